from .act import ACTPipeline

__all__ = ["ACTPipeline"]
