"""InvertAvatar's inversion networks: coarse W+ encoder, pixel-aligned fine U-Nets with ConvGRU, sessions."""
