from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    ordering: tuple[str, ...] = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ByOrdinal(CursorPagination):
    ordering = ("ordinal",)
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
