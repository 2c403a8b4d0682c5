"""A thumbnailer without sorl or easy-thumbnails: the shop's tests render pages, not images."""

from typing import Any

from oscar.core.thumbnails import AbstractThumbnailer


class Original(AbstractThumbnailer):
    def generate_thumbnail(self, source: Any, **opts: Any) -> Any:
        return source

    def delete_thumbnails(self, source: Any) -> None:
        return None
