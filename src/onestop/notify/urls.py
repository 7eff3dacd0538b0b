from django.urls import path

from onestop.notify import views

urlpatterns = [
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/<int:pk>/open/", views.notification_open, name="notification_open"),
    path("notifications/read-all/", views.notification_read_all, name="notification_read_all"),
    path(
        "notifications/preferences/",
        views.notification_preferences,
        name="notification_preferences",
    ),
    path(
        "notifications/channels/", views.notification_channel_list, name="notification_channel_list"
    ),
    path(
        "notifications/channels/new/",
        views.channel_pages.create,
        name="notification_channel_create",
    ),
    path(
        "notifications/channels/<int:pk>/",
        views.notification_channel_detail,
        name="notification_channel_detail",
    ),
    path(
        "notifications/channels/<int:pk>/edit/",
        views.channel_pages.edit,
        name="notification_channel_edit",
    ),
    path(
        "notifications/channels/<int:pk>/delete/",
        views.channel_pages.delete,
        name="notification_channel_delete",
    ),
    path(
        "notifications/channels/<int:pk>/test/",
        views.notification_channel_test,
        name="notification_channel_test",
    ),
    path("notifications/rules/", views.notification_rule_list, name="notification_rule_list"),
    path(
        "notifications/rules/new/",
        views.rule_pages.create,
        name="notification_rule_create",
    ),
    path(
        "notifications/rules/<int:pk>/edit/",
        views.rule_pages.edit,
        name="notification_rule_edit",
    ),
    path(
        "notifications/rules/<int:pk>/delete/",
        views.rule_pages.delete,
        name="notification_rule_delete",
    ),
    path(
        "notifications/deliveries/",
        views.notification_delivery_list,
        name="notification_delivery_list",
    ),
]
