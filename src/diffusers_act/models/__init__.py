from .discriminator import ACTDiscriminator

__all__ = ["ACTDiscriminator"]
