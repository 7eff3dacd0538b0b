from django.urls import path

from onestop.monitoring import views

# Every name starts with "device": the menu's "Devices" entry covers all of these pages.
urlpatterns = [
    path("devices/", views.device_list, name="device_list"),
    path("devices/add/", views.device_add, name="device_add"),
    path("devices/new/", views.device_create, name="device_create"),
    path("devices/import/", views.device_import, name="device_import"),
    path("devices/import/confirm/", views.device_import_confirm, name="device_import_confirm"),
    path("devices/import/template/", views.device_import_template, name="device_import_template"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/edit/", views.device_edit, name="device_edit"),
    path("devices/<int:pk>/delete/", views.device_delete, name="device_delete"),
    path("devices/<int:pk>/agent/revoke/", views.device_agent_revoke, name="device_agent_revoke"),
    path("devices/tokens/<int:pk>/revoke/", views.device_token_revoke, name="device_token_revoke"),
]
