"""What the memory API announces to the rest of the console.

The memory package knows nothing of hops and queues; the lifecycle listens here
(connected in ``HandoffsConfig.ready``), so memory stays at the bottom of the layers.
"""

from django.dispatch import Signal

#: Sent inside the storing transaction for each memory whose ``metadata.type`` is
#: ``"handoff"``, with ``memory`` (the stored memory, wire-shaped) and ``bot`` (the
#: caller). A receiver that raises rolls the store back: a handoff is never half-written.
handoff_memory_stored = Signal()
