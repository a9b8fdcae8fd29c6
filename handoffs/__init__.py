"""The handoff console: one subpackage per part of the product.

Layers, top to bottom; a package imports only from layers below it (checked by
import-linter, ``make lint``; the contracts are in ``pyproject.toml``)::

    urls, routing, admin, apps, demo, management, templatetags   the composition roots
    supervision                         the supervisors' pages (built on the desk's)
    desk | customers | api              agents' pages, the customer's chat, the bot API
    lifecycle | search                  every write of a hop | history, search, the past
    realtime | delivery                 group names and broadcasts | outboxes and worker
    memory                              the memory store (embedded, remote) and its wire API
    access                              who may see and do what (bots' keys, people's rights)
    models | pages                      the tables | what every page shares

``|`` separates packages of one layer that must not import each other. Where a lower
package must reach a higher one it does so through a hook connected in
``HandoffsConfig.ready``: a stored handoff memory is announced by ``memory.signals``
and turned into a hop by the lifecycle; the floor's renderer is registered with
``realtime.broadcast``.
"""
