from django.urls import path

from onestop.monitoring import views

# Names starting with "device" sit under the menu's "Devices" entry (a device's checks among
# them); those starting with "monitoring" under "Problems" (problems, check templates,
# maintenance windows, SNMP credentials and discovery, reached by the tabs on those pages).
urlpatterns = [
    path("devices/", views.device_list, name="device_list"),
    path("devices/add/", views.device_add, name="device_add"),
    path("devices/new/", views.device_pages.create, name="device_create"),
    path("devices/import/", views.device_import, name="device_import"),
    path("devices/import/confirm/", views.device_import_confirm, name="device_import_confirm"),
    path("devices/import/template/", views.device_import_template, name="device_import_template"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/edit/", views.device_pages.edit, name="device_edit"),
    path("devices/<int:pk>/delete/", views.device_pages.delete, name="device_delete"),
    path("devices/<int:pk>/agent/revoke/", views.device_agent_revoke, name="device_agent_revoke"),
    path("devices/tokens/<int:pk>/revoke/", views.device_token_revoke, name="device_token_revoke"),
    path("devices/<int:pk>/checks/new/", views.device_check_create, name="device_check_create"),
    path("devices/checks/<int:pk>/", views.device_check_detail, name="device_check_detail"),
    path("devices/checks/<int:pk>/edit/", views.device_check_edit, name="device_check_edit"),
    path("devices/checks/<int:pk>/delete/", views.device_check_delete, name="device_check_delete"),
    path(
        "devices/checks/<int:pk>/follow-template/",
        views.device_check_follow_template,
        name="device_check_follow_template",
    ),
    path("monitoring/problems/", views.monitoring_problem_list, name="monitoring_problem_list"),
    path("monitoring/templates/", views.monitoring_template_list, name="monitoring_template_list"),
    path(
        "monitoring/templates/new/",
        views.template_pages.create,
        name="monitoring_template_create",
    ),
    path(
        "monitoring/templates/<int:pk>/edit/",
        views.template_pages.edit,
        name="monitoring_template_edit",
    ),
    path(
        "monitoring/templates/<int:pk>/delete/",
        views.template_pages.delete,
        name="monitoring_template_delete",
    ),
    path("monitoring/maintenance/", views.monitoring_window_list, name="monitoring_window_list"),
    path(
        "monitoring/maintenance/new/",
        views.monitoring_window_create,
        name="monitoring_window_create",
    ),
    path(
        "monitoring/maintenance/<int:pk>/edit/",
        views.monitoring_window_edit,
        name="monitoring_window_edit",
    ),
    path(
        "monitoring/maintenance/<int:pk>/delete/",
        views.monitoring_window_delete,
        name="monitoring_window_delete",
    ),
    path(
        "monitoring/snmp-credentials/",
        views.monitoring_credential_list,
        name="monitoring_credential_list",
    ),
    path(
        "monitoring/snmp-credentials/new/",
        views.credential_pages.create,
        name="monitoring_credential_create",
    ),
    path(
        "monitoring/snmp-credentials/<int:pk>/edit/",
        views.credential_pages.edit,
        name="monitoring_credential_edit",
    ),
    path(
        "monitoring/snmp-credentials/<int:pk>/delete/",
        views.credential_pages.delete,
        name="monitoring_credential_delete",
    ),
    path(
        "monitoring/discovery/",
        views.monitoring_discovery_list,
        name="monitoring_discovery_list",
    ),
    path(
        "monitoring/discovery/new/",
        views.monitoring_discovery_create,
        name="monitoring_discovery_create",
    ),
    path(
        "monitoring/discovery/<int:pk>/",
        views.monitoring_discovery_detail,
        name="monitoring_discovery_detail",
    ),
]
