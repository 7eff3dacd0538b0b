"""The inbox (the user's notifications, newest first, with links to what they concern), the
user's preferences, and the pages of channels, rules and the delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from onestop.core.forms import SearchForm
from onestop.core.permissions import allowed_actions, require
from onestop.core.views import ObjectPages, form_page, form_save, list_page, post_data, ui_view
from onestop.notify import forms, selectors, services
from onestop.notify.models import Channel, Delivery, Rule

INBOX_SIZE = 100


@ui_view
def notification_list(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    rows = selectors.notification_list(user=request.user, unread=True if unread_only else None)
    items = [
        {"notification": n, "title": services.notification_title(n)} for n in rows[:INBOX_SIZE]
    ]
    context = {
        "items": items,
        "unread_only": unread_only,
        "unread": selectors.unread_count(user=request.user),
    }
    return render(request, "notify/list.html", context)


@require_POST
@ui_view
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Marks the notification read and goes to what it concerns."""
    notification = selectors.notification_get(user=request.user, pk=pk)
    services.notification_mark_read(user=request.user, notification=notification)
    target = notification.url
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("notification_list")


@require_POST
@ui_view
def notification_read_all(request: HttpRequest) -> HttpResponse:
    marked = services.notifications_mark_all_read(user=request.user)
    messages.success(request, _("%(count)s notifications marked read.") % {"count": marked})
    return redirect("notification_list")


@ui_view
def notification_preferences(request: HttpRequest) -> HttpResponse:
    """The user's own choices: events muted, events also emailed, quiet hours."""
    preference = selectors.preference_for(user=request.user)
    form = forms.PreferenceForm(post_data(request), user=request.user, instance=preference)
    if form_save(request, form):
        messages.success(request, _("Your notification preferences are saved."))
        return redirect("notification_preferences")
    return form_page(
        request,
        form,
        title=_("Notification preferences"),
        cancel_url=reverse("notification_list"),
    )


# Channels -------------------------------------------------------------------------------------


@ui_view
def notification_channel_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Channel)
    form = SearchForm(request.GET)
    form.is_valid()
    queryset = selectors.channel_list(user=request.user)
    if q := form.cleaned_data.get("q"):
        queryset = queryset.filter(name__icontains=q)
    return list_page(
        request,
        model=Channel,
        queryset=queryset,
        order=("name", "id"),
        filter_form=form,
        rows_template="notify/channel_rows.html",
        title=_("Notification channels"),
        add_url=reverse("notification_channel_create"),
    )


@ui_view
def notification_channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel = selectors.channel_get(user=request.user, pk=pk)
    require(request.user, "view", channel)
    context = {
        "channel": channel,
        "actions": allowed_actions(request.user, channel),
        "rules": selectors.rule_list(user=request.user, channel_id=channel.pk),
        "deliveries": selectors.delivery_list(user=request.user, channel_id=channel.pk)[:20],
    }
    return render(request, "notify/channel_detail.html", context)


channel_pages = ObjectPages(
    model=Channel,
    form=forms.ChannelForm,
    get=selectors.channel_get,
    delete_service=services.channel_delete,
    create_title=gettext_lazy("New notification channel"),
    list_url="notification_channel_list",
    detail_url="notification_channel_detail",
)


@require_POST
@ui_view
def notification_channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """The "send test" button: one message now, its outcome on the page and in the log."""
    channel = selectors.channel_get(user=request.user, pk=pk)
    require(request.user, "change", channel)
    delivery = services.channel_test(actor=request.user, channel=channel)
    if delivery.state == Delivery.State.SENT:
        messages.success(request, _("Test message sent to “%(name)s”.") % {"name": channel})
    else:
        detail = delivery.attempts[-1]["detail"] if delivery.attempts else ""
        messages.error(
            request,
            _("The test message failed: %(detail)s") % {"detail": detail},
        )
    return redirect("notification_channel_detail", pk=channel.pk)


# Rules ----------------------------------------------------------------------------------------


@ui_view
def notification_rule_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Rule)
    form = SearchForm(request.GET)
    form.is_valid()
    queryset = selectors.rule_list(user=request.user)
    if q := form.cleaned_data.get("q"):
        queryset = queryset.filter(name__icontains=q)
    return list_page(
        request,
        model=Rule,
        queryset=queryset,
        order=("name", "id"),
        filter_form=form,
        rows_template="notify/rule_rows.html",
        title=_("Notification rules"),
        add_url=reverse("notification_rule_create"),
    )


# Rules have no page of their own, and are edited and deleted from the list's rows.
rule_pages = ObjectPages(
    model=Rule,
    form=forms.RuleForm,
    get=selectors.rule_get,
    delete_service=services.rule_delete,
    create_title=gettext_lazy("New notification rule"),
    list_url="notification_rule_list",
)


# The delivery log ------------------------------------------------------------------------------


@ui_view
def notification_delivery_list(request: HttpRequest) -> HttpResponse:
    """Every delivery with its attempts and result, newest first."""
    require(request.user, "view", Delivery)
    form = forms.DeliveryFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    channel = data.get("channel")
    queryset = selectors.delivery_list(
        user=request.user,
        state=data.get("state") or None,
        channel_id=channel.pk if channel else None,
    )
    return list_page(
        request,
        model=Delivery,
        queryset=queryset,
        order=("-id",),
        filter_form=form,
        rows_template="notify/delivery_rows.html",
        title=_("Delivery log"),
    )
