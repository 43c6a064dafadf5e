"""Pictures of results (matplotlib, headless): confusion matrices, curves, attention maps."""
