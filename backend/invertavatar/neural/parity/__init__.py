"""Parity with the official InvertAvatar computation: weight recipe, fixture reader, per-fixture runners."""
