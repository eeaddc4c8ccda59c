from .scheduling_consistency_act import ConsistencyACTScheduler, ConsistencyACTSchedulerOutput

__all__ = ["ConsistencyACTScheduler", "ConsistencyACTSchedulerOutput"]
