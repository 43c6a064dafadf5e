"""Image captioning with visual attention: vision backbones + the text decoders (see models.py)."""
