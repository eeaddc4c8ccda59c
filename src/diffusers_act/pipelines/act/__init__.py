from .pipeline_act import ACTPipeline

__all__ = ["ACTPipeline"]
