"""Training of the prior (reconstruction objective) and of the inversion encoders (coarse, fine, recurrent)."""
