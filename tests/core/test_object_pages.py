"""The generic create, edit and delete pages (core.views.ObjectPages): where a save, a deletion
and a cancel lead, and how a customer named by an "add" link reaches the form."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path, reverse

from onestop.core import services
from onestop.core.models import Site
from onestop.core.views import site_pages

# Sites declared again as objects without a page of their own, the way list-only objects
# (canned replies, check templates, notification rules) are: with and without a way back to
# the edit page from the delete page.
listed_sites = dataclasses.replace(
    site_pages, detail_url="", edit_url="listed_site_edit", preset=None, deleted_url=None
)
bare_sites = dataclasses.replace(listed_sites, edit_url="")

urlpatterns = [
    path("listed-sites/new/", listed_sites.create, name="listed_site_create"),
    path("listed-sites/<int:pk>/edit/", listed_sites.edit, name="listed_site_edit"),
    path("listed-sites/<int:pk>/delete/", listed_sites.delete, name="listed_site_delete"),
    path("bare-sites/<int:pk>/delete/", bare_sites.delete, name="bare_site_delete"),
    path("", include("onestop.config.urls")),
]

pytestmark = pytest.mark.urls(__name__)


RENAMED = {"name": "改名办公室", "time_zone": "Asia/Shanghai"}


def _new_site(world):
    return {"customer": world.customer_a.pk, "name": "新办公室", "time_zone": "Asia/Shanghai"}


def test_a_save_goes_to_the_objects_page(world, login):
    client = login(world.admin)
    response = client.post(reverse("site_create"), _new_site(world))
    site = Site.objects.get(name="新办公室")
    assert response["Location"] == reverse("site_detail", args=[site.pk])
    response = client.post(reverse("site_edit", args=[site.pk]), RENAMED)
    assert response["Location"] == reverse("site_detail", args=[site.pk])
    page = client.get(reverse("site_edit", args=[site.pk]))
    assert page.context["cancel_url"] == reverse("site_detail", args=[site.pk])


def test_without_a_page_of_its_own_a_save_goes_to_the_list(world, login):
    client = login(world.admin)
    response = client.post(reverse("listed_site_create"), _new_site(world))
    site = Site.objects.get(name="新办公室")
    assert response["Location"] == reverse("site_list")
    response = client.post(reverse("listed_site_edit", args=[site.pk]), RENAMED)
    assert response["Location"] == reverse("site_list")
    page = client.get(reverse("listed_site_edit", args=[site.pk]))
    assert page.context["cancel_url"] == reverse("site_list")


@pytest.mark.parametrize(
    ("url_name", "cancel_url"),
    [
        ("site_delete", "site_detail"),
        ("listed_site_delete", "listed_site_edit"),
        ("bare_site_delete", None),
    ],
)
def test_the_delete_page_cancels_to_the_object_else_its_edit_page_else_the_list(
    world, login, url_name, cancel_url
):
    page = login(world.admin).get(reverse(url_name, args=[world.site_a.pk]))
    assert page.status_code == 200
    expected = reverse(cancel_url, args=[world.site_a.pk]) if cancel_url else reverse("site_list")
    assert page.context["cancel_url"] == expected


def test_a_deletion_ends_on_the_list_or_where_declared(world, login):
    client = login(world.admin)
    response = client.post(reverse("listed_site_delete", args=[world.site_a.pk]))
    assert response["Location"] == reverse("site_list")
    other = services.site_create(actor=None, customer=world.customer_a, name="另一处")
    response = client.post(reverse("site_delete", args=[other.pk]))
    assert response["Location"] == reverse("customer_detail", args=[world.customer_a.pk])
    assert not Site.objects.filter(pk__in=[world.site_a.pk, other.pk]).exists()


def test_a_customer_named_by_the_add_link_is_preset_and_cancelling_goes_back_to_it(world, login):
    client = login(world.engineer)
    page = client.get(reverse("site_create") + f"?customer={world.customer_a.pk}")
    assert page.context["form"].initial["customer"] == world.customer_a
    assert page.context["cancel_url"] == reverse("customer_detail", args=[world.customer_a.pk])
    assert client.get(reverse("site_create")).context["cancel_url"] == reverse("site_list")
    # Another customer's: not found, as everywhere else.
    invisible = reverse("site_create") + f"?customer={world.customer_b.pk}"
    assert client.get(invisible).status_code == 404


def test_pages_without_a_preset_do_not_read_the_customer(world, login):
    url = reverse("listed_site_create") + f"?customer={world.customer_b.pk}"
    page = login(world.engineer).get(url)
    assert page.status_code == 200
    assert page.context["cancel_url"] == reverse("site_list")


def test_a_delete_service_must_take_its_object_by_one_keyword():
    def delete_two(*, actor, site, customer):
        pass

    with pytest.raises(ImproperlyConfigured):
        dataclasses.replace(site_pages, delete_service=delete_two).delete  # noqa: B018
