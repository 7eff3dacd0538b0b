from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "onestop.web"
    label = "web"
