"""Files on tickets: limits, who may download them, merge and links."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from onestop.core.errors import ConflictError
from onestop.servicedesk import services
from onestop.servicedesk.models import Status, TicketAttachment, TicketEntry
from tests.apitest import Multipart, api_client, call

pytestmark = pytest.mark.django_db


def _ticket(world, customer=None, **extra):
    return services.ticket_create(
        actor=world.dispatcher,
        customer=customer or world.customer_a,
        title="显示器闪烁",
        channel="phone",
        **extra,
    )


def _png(name="截图.png", size=100):
    return SimpleUploadedFile(name, b"\x89PNG" + b"0" * size, "image/png")


def test_upload_and_download_keep_the_original_name(world):
    ticket = _ticket(world, requester_user=world.portal_a)
    response = call(
        api_client(world.portal_a),
        "post",
        f"/api/v1/tickets/{ticket.pk}/attachments",
        Multipart({"file": _png()}),
    )
    assert response.status_code == 201, response.body
    attachment = TicketAttachment.objects.get()
    assert attachment.name == "截图.png" and "截图" not in attachment.file.name
    download = api_client(world.engineer).get(f"/api/v1/attachments/{attachment.pk}/download")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"\x89PNG")
    assert "attachment" in download["Content-Disposition"]


@pytest.mark.parametrize("who", ["engineer", "portal_a", "portal_admin_a", "other_engineer"])
def test_download_is_absent_outside_scope(world, who):
    foreign = _ticket(world, customer=world.customer_b)
    attachment = services.ticket_attach(actor=world.admin, ticket=foreign, upload=_png())
    client = api_client(getattr(world, who))
    expected = 200 if who == "other_engineer" else 404  # other_engineer serves B
    assert client.get(f"/api/v1/attachments/{attachment.pk}/download").status_code == expected


def test_internal_files_and_colleagues_files_stay_hidden_from_customers(world):
    own = _ticket(world, requester_user=world.portal_a)
    internal = services.ticket_attach(
        actor=world.engineer, ticket=own, upload=_png(), is_public=False
    )
    colleague = _ticket(world)
    theirs = services.ticket_attach(actor=world.engineer, ticket=colleague, upload=_png())
    portal = api_client(world.portal_a)
    assert portal.get(f"/api/v1/attachments/{internal.pk}/download").status_code == 404
    assert portal.get(f"/api/v1/attachments/{theirs.pk}/download").status_code == 404
    listed = call(portal, "get", f"/api/v1/tickets/{own.pk}/attachments").body
    assert listed == []


@pytest.mark.parametrize(
    "upload,message",
    [
        (SimpleUploadedFile("setup.exe", b"MZ", "application/octet-stream"), ".exe"),
        (SimpleUploadedFile("noextension", b"x"), ".?"),
    ],
)
def test_disallowed_types_are_refused(world, upload, message):
    ticket = _ticket(world)
    with pytest.raises(ValidationError) as caught:
        services.ticket_attach(actor=world.engineer, ticket=ticket, upload=upload)
    assert message in str(caught.value.message_dict["file"])
    assert not TicketAttachment.objects.exists()


def test_oversized_file_is_refused_and_nothing_is_stored(world, settings, tmp_path):
    settings.ONESTOP_ATTACHMENT_MAX_BYTES = 1024
    settings.MEDIA_ROOT = str(tmp_path)
    ticket = _ticket(world)
    response = call(
        api_client(world.engineer),
        "post",
        f"/api/v1/tickets/{ticket.pk}/attachments",
        Multipart({"file": _png(size=2048)}),
    )
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "file"
    assert not TicketAttachment.objects.exists()
    assert not any(tmp_path.rglob("*"))


def test_merge_moves_the_timeline_and_closes_the_duplicate(world):
    target = _ticket(world)
    duplicate = _ticket(world)
    services.ticket_reply(actor=world.engineer, ticket=duplicate, body="重复报障")
    services.ticket_attach(actor=world.engineer, ticket=duplicate, upload=_png())
    services.ticket_update(actor=world.dispatcher, ticket=duplicate, watchers=[world.manager])
    services.ticket_merge(actor=world.dispatcher, source=duplicate, target=target)
    duplicate.refresh_from_db()
    assert duplicate.status == Status.CLOSED and duplicate.merged_into == target
    assert TicketEntry.objects.filter(ticket=target, body="重复报障").exists()
    assert target.attachments.count() == 1
    assert list(target.watchers.all()) == [world.manager]
    with pytest.raises(ConflictError):
        services.ticket_merge(actor=world.dispatcher, source=duplicate, target=target)
    with pytest.raises(ValidationError):
        services.ticket_merge(
            actor=world.dispatcher, source=target, target=_ticket(world, customer=world.customer_b)
        )


def test_watchers_copies_and_links(world):
    ticket = _ticket(world)
    child = _ticket(world, requester=world.contact_a)
    client = api_client(world.dispatcher)
    response = call(
        client,
        "patch",
        f"/api/v1/tickets/{child.pk}",
        {
            "parent_id": ticket.pk,
            "watcher_ids": [world.engineer.pk],
            "cc_contact_ids": [world.contact_a.pk],
            "related_ids": [ticket.pk],
        },
    )
    assert response.status_code == 200, response.body
    assert response.body["parent_id"] == ticket.pk
    assert response.body["watcher_ids"] == [world.engineer.pk]
    assert call(client, "get", f"/api/v1/tickets/{ticket.pk}").body["related_ids"] == [child.pk]
    response = call(
        client, "patch", f"/api/v1/tickets/{child.pk}", {"cc_contact_ids": [world.contact_b.pk]}
    )
    assert response.status_code == 422  # another customer's contact is not even visible
    response = call(client, "patch", f"/api/v1/tickets/{ticket.pk}", {"parent_id": child.pk})
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "parent"
