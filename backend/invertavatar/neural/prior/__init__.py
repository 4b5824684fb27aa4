"""The animatable 3D GAN prior (Next3D++): StyleGAN2 backbones, mesh-driven frontal plane, volume rendering."""
