"""The API server: composes every component's router into one FastAPI app
(`modelyard.server.app.create_app`).

Nothing is imported here: components import helpers of this package (`server.errors`,
`server.limits`), and importing the app from here would make each of them import every
component first, a cycle as soon as one of those is imported on its own.
"""
