"""Use-cases shared by the CLI and the TUI. Neither of them talks SQL or to a target directly."""

from __future__ import annotations

from functools import cached_property

from sevtool.settings import Settings
from sevtool.store.repository import Store


class Workbench:
    """One per process: settings, the store, and the use-case groups built on them."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None):
        self.settings = settings or Settings()
        self._store = store

    @cached_property
    def store(self) -> Store:
        store = self._store or Store(self.settings.db, actor=self.settings.who)
        store.event_hooks.append(self.notify.on_event)  # webhook outbox rows, written with their event
        return store

    @property
    def policy(self):
        return self.settings.policy

    @property
    def zone(self):
        return self.settings.zone

    @cached_property
    def incidents(self):
        from sevtool.services.incidents import IncidentService

        return IncidentService(self)

    @cached_property
    def scanning(self):
        from sevtool.services.scanning import ScanService

        return ScanService(self)

    @cached_property
    def finding_pages(self):
        from sevtool.services.finding_pages import FindingPageService

        return FindingPageService(self)

    @cached_property
    def postmortem(self):
        from sevtool.services.postmortem import PostmortemService

        return PostmortemService(self)

    @cached_property
    def playbooks(self):
        from sevtool.services.playbooks import PlaybookService

        return PlaybookService(self)

    @cached_property
    def verification(self):
        from sevtool.services.verification import VerificationService

        return VerificationService(self)

    @cached_property
    def revocation(self):
        from sevtool.services.revocation import RevocationService

        return RevocationService(self)

    @cached_property
    def evidence(self):
        from sevtool.services.evidence import EvidenceService

        return EvidenceService(self)

    @cached_property
    def table_stats(self):
        from sevtool.services.table_stats import TableStatsService

        return TableStatsService(self)

    @cached_property
    def notify(self):
        from sevtool.services.notify import NotifyService

        return NotifyService(self)

    @cached_property
    def guard(self):
        from sevtool.services.guard import GuardService

        return GuardService(self)

    @cached_property
    def watch_fleet(self):
        from sevtool.services.watch_fleet import WatchFleetService

        return WatchFleetService(self)

    @cached_property
    def access(self):
        from sevtool.services.access import AccessService

        return AccessService(self)
