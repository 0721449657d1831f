"""Exporters that turn a fine-tuned model folder into a faster-to-serve format."""
