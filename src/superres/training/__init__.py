"""Training: the loop, its configuration and callbacks (MLflow is one callback)."""
