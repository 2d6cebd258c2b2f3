"""URLs of the sending pipeline's pages (receipt reports, replies, carrier callbacks).

Included by campaigns/urls.py under the same ``campaigns`` namespace.
"""

urlpatterns: list = []
