"""Reads of the agent side, scoped to the user."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from onestop.assets.models import Device
from onestop.core import crypto
from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible
from onestop.monitoring.models import (
    Agent,
    Check,
    CheckState,
    CheckStateChange,
    CheckTemplate,
    DiscoveryJob,
    EnrollmentToken,
    MaintenanceWindow,
    SnmpCredential,
    SnmpTrap,
)
from onestop.monitoring.poller import Target, shard_owns
from onestop.monitoring.probes.snmp import SnmpCredentials


def enrollment_token_list(*, user: User, site_id: int | None = None) -> QuerySet[EnrollmentToken]:
    qs = restrict(EnrollmentToken.objects.select_related("site__customer"), user)
    if site_id:
        qs = qs.filter(site_id=site_id)
    return qs


def enrollment_token_get(*, user: User, pk: Any) -> EnrollmentToken:
    return get_visible(EnrollmentToken.objects.select_related("site__customer"), user, pk)


def agent_for(*, user: User, device: Device) -> Agent | None:
    return restrict(Agent.objects.filter(device=device), user).first()


def agents_by_device(*, device_ids: list[int]) -> dict[int, Agent]:
    """The agents of the devices listed (one query), for status columns."""
    return {agent.device_id: agent for agent in Agent.objects.filter(device_id__in=device_ids)}


# Checks and maintenance -----------------------------------------------------------------------

# Worst first in problem lists.
_SEVERITY_ORDER = Case(
    When(state=CheckState.CRITICAL, then=Value(0)),
    When(state=CheckState.WARNING, then=Value(1)),
    When(state=CheckState.UNKNOWN, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def check_list(*, user: User, device: Device | None = None) -> QuerySet[Check]:
    qs = restrict(Check.objects.select_related("device", "template"), user)
    if device is not None:
        qs = qs.filter(device=device)
    return qs


def check_get(*, user: User, pk: Any) -> Check:
    return get_visible(Check.objects.select_related("device", "template"), user, pk)


def problems_list(*, user: User) -> QuerySet[Check]:
    """The enabled checks that are not OK, worst and oldest first, among what the user may see.

    A check that has never had a result (UNKNOWN since it was created) is pending, not a
    problem, so a new template does not flood the list.
    """
    qs = Check.objects.filter(enabled=True, last_checked_at__isnull=False).exclude(
        state=CheckState.OK
    )
    return (
        restrict(qs.select_related("device__customer", "device__site"), user)
        .annotate(severity_rank=_SEVERITY_ORDER)
        .order_by("severity_rank", "state_since", "id")
    )


def check_history(*, check: Check) -> QuerySet[CheckStateChange]:
    """The check's state changes, newest first (the caller has already scoped the check)."""
    return CheckStateChange.objects.filter(check_obj=check).select_related("maintenance_window")


def check_state_changes_since(*, after_id: int, limit: int = 1000) -> list[CheckStateChange]:
    """State changes after a consumer's cursor, oldest first, for in-process consumers that
    do not read the domain event table (each change is also the event `check.state_changed`)."""
    return list(
        CheckStateChange.objects.filter(pk__gt=after_id)
        .select_related("check_obj__device")
        .order_by("id")[:limit]
    )


def check_template_list(*, user: User) -> QuerySet[CheckTemplate]:
    return restrict(CheckTemplate.objects.select_related("customer", "site"), user)


def check_template_get(*, user: User, pk: Any) -> CheckTemplate:
    return get_visible(CheckTemplate.objects.select_related("customer", "site"), user, pk)


def maintenance_window_list(*, user: User) -> QuerySet[MaintenanceWindow]:
    return restrict(MaintenanceWindow.objects.select_related("customer", "site", "device"), user)


def maintenance_window_get(*, user: User, pk: Any) -> MaintenanceWindow:
    return get_visible(
        MaintenanceWindow.objects.select_related("customer", "site", "device"), user, pk
    )


def maintenance_window_covering(*, device: Device, at: dt.datetime) -> MaintenanceWindow | None:
    """A window that covers the device at that instant (its own, its site's or its
    customer's), or None. One-off windows are filtered in the database, recurring ones by
    their rule."""
    applies = Q(device=device) | Q(device__isnull=True, site__isnull=True)
    if device.site_id:
        applies |= Q(device__isnull=True, site_id=device.site_id)
    candidates = MaintenanceWindow.objects.filter(
        applies, customer_id=device.customer_id, starts_at__lte=at
    ).filter(Q(rrule="", ends_at__gt=at) | ~Q(rrule=""))
    for window in candidates.order_by("starts_at", "id"):
        if window.covers(at):
            return window
    return None


def device_in_maintenance(*, device: Device, at: dt.datetime) -> bool:
    """Whether a maintenance window covers the device at that instant."""
    return maintenance_window_covering(device=device, at=at) is not None


def snmp_credentials_for_probe(credential: SnmpCredential) -> SnmpCredentials:
    """The probe's view of stored credentials, secrets decrypted."""
    return SnmpCredentials(
        version=credential.version,
        community=crypto.decrypt(credential.community_encrypted),
        user=credential.user,
        auth_protocol=credential.auth_protocol,
        auth_key=crypto.decrypt(credential.auth_key_encrypted),
        priv_protocol=credential.priv_protocol,
        priv_key=crypto.decrypt(credential.priv_key_encrypted),
        context=credential.context,
    )


# The parameter naming the probe's target, filled from the device's address when left out.
_TARGET_PARAM = {"dns": "server", "http": None}


def poller_targets(*, shard: int = 0, shards: int = 1) -> list[Target]:
    """The enabled poller checks this shard owns, as the poller runs them: the device's IP
    address (else host name) where the check names no host, SNMP credentials decrypted."""
    checks = (
        Check.objects.filter(enabled=True, kind=Check.Kind.POLLER)
        .select_related("device", "snmp_credential")
        .only(
            "id",
            "probe",
            "params",
            "interval",
            "timeout",
            "retries",
            "device_id",
            "device__ip_address",
            "device__hostname",
            "snmp_credential",
        )
        .order_by("id")
    )
    targets = []
    credentials: dict[int, SnmpCredentials] = {}
    for check in checks.iterator(chunk_size=2000):
        if not shard_owns(check.id, shard=shard, shards=shards):
            continue
        params = dict(check.params)
        address_param = _TARGET_PARAM.get(check.probe, "host")
        if address_param and not params.get(address_param):
            params[address_param] = check.device.ip_address or check.device.hostname
        if check.snmp_credential is not None:
            if check.snmp_credential.pk not in credentials:
                credentials[check.snmp_credential.pk] = snmp_credentials_for_probe(
                    check.snmp_credential
                )
            params["credentials"] = credentials[check.snmp_credential.pk]
        targets.append(
            Target(
                check_id=check.id,
                probe=check.probe,
                params=params,
                interval=float(check.interval),
                timeout=float(check.timeout),
                retries=check.retries,
                source_id=check.device_id,
            )
        )
    return targets


def trap_communities() -> dict[int, str]:
    """The v2c communities the trap receiver accepts: those of every stored credential."""
    return {
        credential.pk: crypto.decrypt(credential.community_encrypted)
        for credential in SnmpCredential.objects.filter(version=SnmpCredential.Version.V2C)
    }


def trap_v3_users() -> dict[int, tuple[SnmpCredentials, list[bytes]]]:
    """The v3 users the trap receiver accepts, with the engine ids of their trap senders."""
    return {
        credential.pk: (snmp_credentials_for_probe(credential), credential.engine_ids())
        for credential in SnmpCredential.objects.filter(version=SnmpCredential.Version.V3)
    }


def snmp_credential_list(*, user: User) -> QuerySet[SnmpCredential]:
    return restrict(SnmpCredential.objects.select_related("customer"), user)


def snmp_credential_get(*, user: User, pk: Any) -> SnmpCredential:
    return get_visible(SnmpCredential.objects.select_related("customer"), user, pk)


def snmp_trap_list(*, user: User) -> QuerySet[SnmpTrap]:
    return restrict(SnmpTrap.objects.all(), user)


def snmp_trap_get(*, user: User, pk: Any) -> SnmpTrap:
    return get_visible(SnmpTrap.objects.all(), user, pk)


# SNMP discovery --------------------------------------------------------------------------------

_DISCOVERY_RELATED = ("customer", "site", "snmp_credential__customer", "created_by")


def discovery_job_list(*, user: User) -> QuerySet[DiscoveryJob]:
    """The discoveries the user may see, without their result rows (a list shows counts)."""
    return restrict(DiscoveryJob.objects.select_related(*_DISCOVERY_RELATED).defer("results"), user)


def discovery_job_get(*, user: User, pk: Any) -> DiscoveryJob:
    return get_visible(DiscoveryJob.objects.select_related(*_DISCOVERY_RELATED), user, pk)


def discovery_devices(*, user: User, job: DiscoveryJob) -> dict[int, Device]:
    """The devices a job's result rows name that still exist and the user may see, by id."""
    ids = {row.get("device_id") for row in job.results if isinstance(row, dict)}
    ids.discard(None)
    if not ids:
        return {}
    return {device.pk: device for device in restrict(Device.objects.filter(pk__in=ids), user)}
