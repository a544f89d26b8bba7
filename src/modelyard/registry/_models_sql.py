"""SQL persistence of artifacts, models, versions and aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.registry._sql import SqlBase, insert_edges, point_edges_at
from modelyard.registry.models import AliasMove, Artifact, LineageEdge, Model, ModelVersion
from modelyard.registry.tables import (
    AliasMoveRow,
    AliasRow,
    ArtifactRow,
    ModelRow,
    VersionArtifactRow,
    VersionRow,
)


def _artifact(r: ArtifactRow) -> Artifact:
    return Artifact(digest=r.digest, size=r.size, media_type=r.media_type, name=r.name,
                    created_at=r.created_at, created_by=r.created_by)


class ModelsSql(SqlBase):
    # artifacts
    def add_artifact(self, project: str, digest: str, size: int, media_type: str, name: str,
                     user: str) -> Artifact:
        for _ in range(2):
            try:
                with self.db.session() as s:
                    row = s.scalar(sa.select(ArtifactRow).where(
                        ArtifactRow.project == project, ArtifactRow.digest == digest))
                    now = utcnow()
                    if row is None:
                        row = ArtifactRow(id=new_id("art"), project=project, digest=digest,
                                          size=size, media_type=media_type, name=name,
                                          created_at=now, created_by=user, uploaded_at=now)
                        s.add(row)
                        s.flush()
                    else:
                        row.uploaded_at = now  # retention starts again
                        if name:  # an artifact is its bytes; its name is the latest given
                            row.name = name
                    return _artifact(row)
            except AlreadyExists:  # the same bytes were registered concurrently
                continue
        return self.get_artifact(project, digest)

    def get_artifact(self, project: str, digest: str) -> Artifact:
        with self.db.session() as s:
            row = s.scalar(sa.select(ArtifactRow).where(
                ArtifactRow.project == project, ArtifactRow.digest == digest))
            if row is None:
                raise NotFound(f"artifact {digest[:80]!r} does not exist in project {project!r}; "
                               "upload it first", {"digest": digest[:80]})
            return _artifact(row)

    def list_artifacts(self, project: str, offset: int, limit: int) -> list[Artifact]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(ArtifactRow).where(ArtifactRow.project == project)
                             .order_by(ArtifactRow.created_at.desc(), ArtifactRow.id)
                             .offset(offset).limit(limit)).all()
            return [_artifact(r) for r in rows]

    def collect_artifacts(self, older_than: datetime,
                          project: str | None) -> tuple[list[tuple[str, int]], int]:
        with self.db.session() as s:
            held = sa.select(VersionArtifactRow.digest).join(
                VersionRow, VersionRow.id == VersionArtifactRow.version_id).join(
                ModelRow, ModelRow.id == VersionRow.model_id).where(
                ModelRow.project == ArtifactRow.project,
                VersionArtifactRow.digest == ArtifactRow.digest)
            last_upload = sa.func.coalesce(ArtifactRow.uploaded_at, ArtifactRow.created_at)
            q = sa.select(ArtifactRow.id, ArtifactRow.digest, ArtifactRow.size).where(
                last_upload < older_than, ~held.exists())
            if project is not None:
                q = q.where(ArtifactRow.project == project)
            doomed = s.execute(q).all()
            if not doomed:
                return [], 0
            s.execute(sa.delete(ArtifactRow).where(ArtifactRow.id.in_([d[0] for d in doomed])))
            digests = {d[1]: d[2] for d in doomed}
            still = set(s.scalars(sa.select(ArtifactRow.digest).where(
                ArtifactRow.digest.in_(list(digests)))).all())
            return [(d, size) for d, size in digests.items() if d not in still], len(doomed)

    # models
    def _model_row(self, s: Session, project: str, name: str) -> ModelRow:
        row = s.scalar(sa.select(ModelRow).where(ModelRow.project == project, ModelRow.name == name))
        if row is None:
            raise NotFound(f"model {name!r} does not exist in project {project!r}",
                           {"model": name})
        return row

    def _model(self, s: Session, row: ModelRow) -> Model:
        aliases = dict(s.execute(sa.select(AliasRow.alias, AliasRow.version).where(
            AliasRow.model_id == row.id)).tuples().all())
        return Model(name=row.name, project=row.project, latest_version=row.latest_version,
                     aliases=aliases, created_at=row.created_at, created_by=row.created_by)

    def ensure_model(self, project: str, name: str, user: str) -> Model:
        for _ in range(2):
            try:
                with self.db.session() as s:
                    row = s.scalar(sa.select(ModelRow).where(
                        ModelRow.project == project, ModelRow.name == name))
                    if row is None:
                        now = utcnow()
                        row = ModelRow(id=new_id("mdl"), project=project, name=name,
                                       latest_version=0, created_at=now, updated_at=now,
                                       created_by=user)
                        s.add(row)
                        s.flush()
                    return self._model(s, row)
            except AlreadyExists:
                continue
        return self.get_model(project, name)

    def get_model(self, project: str, name: str) -> Model:
        with self.db.session() as s:
            return self._model(s, self._model_row(s, project, name))

    def list_models(self, project: str) -> list[Model]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(ModelRow).where(ModelRow.project == project)
                             .order_by(ModelRow.name)).all()
            return [self._model(s, r) for r in rows]

    def _lock_model(self, s: Session, project: str, name: str, bump: int) -> tuple[str, int]:
        """Takes the model's write lock first (the first statement writes), so concurrent
        writers queue instead of failing on SQLite and serialize on PostgreSQL's row lock."""
        ret = s.execute(sa.update(ModelRow).where(
            ModelRow.project == project, ModelRow.name == name
        ).values(latest_version=ModelRow.latest_version + bump, updated_at=utcnow())
         .returning(ModelRow.id, ModelRow.latest_version)).first()
        if ret is None:
            raise NotFound(f"model {name!r} does not exist in project {project!r}", {"model": name})
        return ret[0], ret[1]

    def add_version(self, project: str, model: str, fields: dict[str, Any], user: str,
                    edges: list[LineageEdge]) -> ModelVersion:
        with self.db.session() as s:
            model_id, version = self._lock_model(s, project, model, 1)
            now = utcnow()
            row = VersionRow(id=new_id("mv"), model_id=model_id, version=version,
                             created_at=now, created_by=user, **fields)
            s.add(row)
            s.flush()
            if fields["artifacts"]:
                s.execute(sa.insert(VersionArtifactRow), [
                    {"version_id": row.id, "name": k, "digest": v}
                    for k, v in fields["artifacts"].items()])
            insert_edges(s, project, point_edges_at(edges, "model_version", f"{model}@{version}"), now)
            return self._versions(s, project, model, model_id, [row])[0]

    def _versions(self, s: Session, project: str, model: str, model_id: str,
                  rows: list[VersionRow]) -> list[ModelVersion]:
        by_version: dict[int, list[str]] = {}
        for alias, v in s.execute(sa.select(AliasRow.alias, AliasRow.version).where(
                AliasRow.model_id == model_id).order_by(AliasRow.alias)):
            by_version.setdefault(v, []).append(alias)
        return [ModelVersion(
            id=r.id, project=project, model=model, version=r.version, artifacts=r.artifacts,
            framework=r.framework, signature=r.signature, preprocessing=r.preprocessing,
            metrics=r.metrics, params=r.params, run_id=r.run_id, job_id=r.job_id,
            dataset_snapshot_id=r.dataset_snapshot_id, code_hash=r.code_hash,
            aliases=by_version.get(r.version, []), created_at=r.created_at,
            created_by=r.created_by, description=r.description or "", tags=r.tags or {},
            archived_at=r.archived_at) for r in rows]

    def get_version(self, project: str, model: str, version: int | None,
                    alias: str | None = None) -> ModelVersion:
        with self.db.session() as s:
            m = self._model_row(s, project, model)
            if alias is not None:
                found = s.scalar(sa.select(AliasRow.version).where(
                    AliasRow.model_id == m.id, AliasRow.alias == alias))
                if found is None:
                    raise NotFound(f"model {model!r} has no alias {alias!r}; set it with "
                                   f"`modelyard model alias {model} {alias} VERSION`",
                                   {"model": model, "alias": alias})
                version = found
            elif version is None:
                # the newest version still there (latest_version may have been deleted)
                version = s.scalar(sa.select(sa.func.max(VersionRow.version)).where(
                    VersionRow.model_id == m.id))
                if version is None:
                    raise NotFound(f"model {model!r} has no versions yet", {"model": model})
            row = s.scalar(sa.select(VersionRow).where(
                VersionRow.model_id == m.id, VersionRow.version == version))
            if row is None:
                raise NotFound(f"model {model!r} has no version {version}",
                               {"model": model, "version": version})
            return self._versions(s, project, model, m.id, [row])[0]

    def version_by_id(self, project: str, version_id: str) -> ModelVersion:
        with self.db.session() as s:
            found = s.execute(sa.select(VersionRow, ModelRow).join(
                ModelRow, ModelRow.id == VersionRow.model_id).where(
                VersionRow.id == version_id, ModelRow.project == project)).first()
            if found is None:
                raise NotFound(f"model version {version_id!r} does not exist in project {project!r}")
            row, m = found
            return self._versions(s, project, m.name, m.id, [row])[0]

    def list_versions(self, project: str, model: str) -> list[ModelVersion]:
        with self.db.session() as s:
            m = self._model_row(s, project, model)
            rows = list(s.scalars(sa.select(VersionRow).where(VersionRow.model_id == m.id)
                                  .order_by(VersionRow.version)).all())
            return self._versions(s, project, model, m.id, rows)

    def set_alias(self, project: str, model: str, alias: str, version: int | None,
                  actor: str) -> AliasMove:
        with self.db.session() as s:
            model_id, _ = self._lock_model(s, project, model, 0)
            if version is not None:
                target = s.scalar(sa.select(VersionRow).where(
                    VersionRow.model_id == model_id, VersionRow.version == version))
                if target is None:
                    raise NotFound(f"model {model!r} has no version {version}; register it "
                                   "first", {"model": model, "version": version})
                if target.archived_at is not None:
                    raise Conflict(f"{model}@{version} is archived; restore it (archived: "
                                   "false) before pointing an alias at it",
                                   {"model": model, "version": version})
            row = s.get(AliasRow, (model_id, alias))
            before = row.version if row is not None else None
            if version is not None and before == version:
                # Nothing moves: a history row (and the `alias.moved` it would announce) would
                # start the pipelines watching this alias for nothing, and a pipeline that sets
                # the alias it is triggered on would trigger itself again and again.
                return AliasMove(model=model, alias=alias, from_version=before,
                                 to_version=version, actor=actor, moved_at=utcnow(), moved=False)
            if version is None:
                if row is None:
                    raise NotFound(f"model {model!r} has no alias {alias!r}")
                s.delete(row)
            elif row is None:
                s.add(AliasRow(model_id=model_id, alias=alias, version=version))
            else:
                row.version = version
            move = AliasMoveRow(model_id=model_id, alias=alias, from_version=before,
                                to_version=version, actor=actor, moved_at=utcnow())
            s.add(move)
        return AliasMove(model=model, alias=alias, from_version=before, to_version=version,
                         actor=actor, moved_at=move.moved_at)

    def alias_history(self, project: str, model: str, alias: str | None) -> list[AliasMove]:
        with self.db.session() as s:
            m = self._model_row(s, project, model)
            q = sa.select(AliasMoveRow).where(AliasMoveRow.model_id == m.id)
            if alias is not None:
                q = q.where(AliasMoveRow.alias == alias)
            rows = s.scalars(q.order_by(AliasMoveRow.id.desc())).all()
            return [AliasMove(model=model, alias=r.alias, from_version=r.from_version,
                              to_version=r.to_version, actor=r.actor, moved_at=r.moved_at)
                    for r in rows]

    def update_version(self, project: str, model: str, version: int,
                       changes: dict[str, Any]) -> ModelVersion:
        """`changes` holds description, tags and/or archived (a bool). Archiving a version an
        alias points at is refused, checked under the model's lock (no alias moves meanwhile)."""
        with self.db.session() as s:
            model_id, _ = self._lock_model(s, project, model, 0)
            row = self._version_row(s, model_id, model, version)
            if changes.get("archived"):
                self._refuse_if_aliased(s, model_id, model, version, "archive")
            if "description" in changes:
                row.description = changes["description"]
            if "tags" in changes:
                row.tags = changes["tags"]
            if "archived" in changes:
                if not changes["archived"]:
                    row.archived_at = None
                elif row.archived_at is None:
                    row.archived_at = utcnow()
            s.flush()
            return self._versions(s, project, model, model_id, [row])[0]

    def delete_version(self, project: str, model: str, version: int) -> ModelVersion:
        """Deletes the version and its artifact holds (the bytes stay until artifact GC);
        refused while an alias points at it. Its number is never given out again, and its
        lineage edges stay: what it was trained from and served by is history."""
        with self.db.session() as s:
            model_id, _ = self._lock_model(s, project, model, 0)
            row = self._version_row(s, model_id, model, version)
            self._refuse_if_aliased(s, model_id, model, version, "delete")
            gone = self._versions(s, project, model, model_id, [row])[0]
            s.execute(sa.delete(VersionArtifactRow).where(VersionArtifactRow.version_id == row.id))
            s.delete(row)
            return gone

    def _version_row(self, s: Session, model_id: str, model: str, version: int) -> VersionRow:
        row = s.scalar(sa.select(VersionRow).where(VersionRow.model_id == model_id,
                                                   VersionRow.version == version))
        if row is None:
            raise NotFound(f"model {model!r} has no version {version}",
                           {"model": model, "version": version})
        return row

    def _refuse_if_aliased(self, s: Session, model_id: str, model: str, version: int,
                           what: str) -> None:
        aliases = sorted(s.scalars(sa.select(AliasRow.alias).where(
            AliasRow.model_id == model_id, AliasRow.version == version)).all())
        if aliases:
            raise Conflict(f"cannot {what} {model}@{version}: alias(es) {', '.join(aliases)} "
                           "point at it; move or delete them first",
                           {"model": model, "version": version, "aliases": aliases,
                            "deployments": []})
