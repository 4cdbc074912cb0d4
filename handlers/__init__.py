"""The bot's reactions: one Router per file, listed here in priority order.

Events without a route (archive consent, app entries, unknown events) stay recorded in the
inbox with the outcome "unhandled".
"""

from handlers import (
    acquisition,
    auto_tags,
    contacts,
    directory,
    groups,
    guide_chat,
    kf,
    materials,
    radar,
    sop,
    tags,
)

# materials before guide_chat: it takes the texts that belong to the material centre and
# hands every other one to the guide chat.
ROUTERS = (contacts.router, tags.router, sop.router, radar.router, auto_tags.router,
           directory.router, groups.router, kf.router, acquisition.router, materials.router,
           guide_chat.router)
