"""YouTube-8M video classification: TFRecords, learnable pooling, Context Gating, GAP."""
