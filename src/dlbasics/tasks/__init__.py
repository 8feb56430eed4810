"""LightningModules for tasks that differ from classification/regression (subclasses of Task)."""
