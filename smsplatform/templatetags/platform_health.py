from django import template

from smsplatform import health

register = template.Library()


@register.simple_tag
def platform_health():
    return health.run_checks()
