"""``manage.py prune_attachments``: delete stored files no attachment refers to.

A file is stored before its message's transaction; if the process dies in between
(a Daphne killed mid-upload), the file stays without a message. Such files older than
``--older-than`` minutes (default 60, so uploads in flight are never touched) are
deleted. Works with any storage backend that can list (the filesystem, S3).
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from handoffs.models import Attachment


class Command(BaseCommand):
    help = "Delete attachment files that no message refers to (left by interrupted uploads)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=60, help="minutes (default 60)")
        parser.add_argument("--dry-run", action="store_true", help="only list them")

    def handle(self, *args, older_than: int, dry_run: bool, **options):
        storage = Attachment._meta.get_field("file").storage
        cutoff = timezone.now() - timedelta(minutes=older_than)
        used = set(Attachment.objects.values_list("file", flat=True))
        used |= set(Attachment.objects.exclude(thumbnail="").values_list("thumbnail", flat=True))
        pruned = 0
        for folder in ("files", "thumbs"):
            try:
                names = storage.listdir(folder)[1]
            except FileNotFoundError:
                continue
            for name in names:
                path = f"{folder}/{name}"
                if path in used or storage.get_modified_time(path) > cutoff:
                    continue
                pruned += 1
                self.stdout.write(path)
                if not dry_run:
                    storage.delete(path)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {pruned} unreferenced file(s)")
