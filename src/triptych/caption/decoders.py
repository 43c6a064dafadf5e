"""The caption decoders there are, named once for the config's bounds and the model builder."""

DECODERS = ("rnn", "transformer")
