"""Walking a task's batch plans step by step, and knowing exactly where we are.

A task plans each epoch as a list of micro-batches (lists of example
indices, global over all ranks). An optimiser step takes `accum_steps`
consecutive micro-batches; a step may run across the end of one epoch into
the next. The position (epoch, index of the next micro-batch) is part of the
checkpoint, and because a plan is a pure function of (seed, epoch), a
resumed run recomputes the plan and continues from the very same batch.

Each rank takes its shard `indices[rank::world_size]` of every micro-batch,
so the micro-batch, not the shard, is the unit the plan is written in: the
same plan gives the same global batches on one process or on eight.
"""

from __future__ import annotations

from triptych.errors import UserError


class BatchStream:
    def __init__(self, task, *, epoch: int = 0, position: int = 0, rank: int = 0, world_size: int = 1,
                 max_epochs: int | None = None):
        self.task = task
        self.epoch = epoch
        self.position = position
        self.rank = rank
        self.world_size = world_size
        self.max_epochs = max_epochs
        self._plan: list[list[int]] | None = None
        self._plan_epoch: int | None = None

    def _current_plan(self) -> list[list[int]]:
        if self._plan_epoch != self.epoch:
            plan = [list(mb) for mb in self.task.batch_plan(self.epoch)]
            if not plan or not any(plan):
                raise UserError(f"{self.task.domain} task: the training data gave no batches for epoch {self.epoch}")
            self._plan, self._plan_epoch = plan, self.epoch
        return self._plan

    def exhausted(self) -> bool:
        return self.max_epochs is not None and self.epoch >= self.max_epochs

    def next_step(self, accum_steps: int) -> list[list[int]] | None:
        """This rank's shards of the next `accum_steps` micro-batches (some may be empty).

        None when `max_epochs` is reached before the step could start; a step
        cut short by the last epoch's end gets fewer micro-batches.
        """
        shards: list[list[int]] = []
        while len(shards) < accum_steps:
            if self.exhausted():
                break
            plan = self._current_plan()
            if self.position >= len(plan):
                self.epoch += 1
                self.position = 0
                continue
            micro = plan[self.position]
            self.position += 1
            shards.append(micro[self.rank::self.world_size])
        return shards or None

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}
