"""Built-in trainers; `modelyard.training.trainers.BUILTINS` names them."""
