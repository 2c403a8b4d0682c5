"""The project's own tests: under pgwarden's TestRunner their queries run as the app role."""

from django.conf import settings
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client, TestCase, TransactionTestCase

from pgwarden.contrib.django import database_settings
from shop.models import Order, Product

APP_ROLE = database_settings(settings.PGWARDEN_POLICY, role="runtime")["USER"]


class AsTheAppRole(TestCase):
    def test_queries_run_as_the_app_role(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            user, dbname = cursor.fetchone()
        self.assertEqual(user, APP_ROLE)
        self.assertTrue(dbname.startswith("test_"), dbname)

    def test_ddl_is_denied(self) -> None:
        # what a migration may do and the app may not: found in tests, not in production
        with self.assertRaisesMessage(ProgrammingError, "permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE shop_sneaky (id int)")

    def test_a_view_writes_rows(self) -> None:
        self.assertEqual(Client().get("/buy/").status_code, 200)
        self.assertEqual(Order.objects.count(), 1)


class WithFixtures(TestCase):
    fixtures = ["products"]  # loaddata moves the sequence past pk 41: setval, run as the owner

    def test_new_rows_follow_the_fixture(self) -> None:
        self.assertEqual(Product.objects.create(name="next").pk, 42)


class FlushedAsTheOwnerA(TransactionTestCase):
    reset_sequences = True  # TRUNCATE ... RESTART IDENTITY between tests: the owner's to run

    def test_first(self) -> None:
        self.assertEqual(Product.objects.create(name="a").pk, 1)

    def test_second(self) -> None:
        self.assertEqual(Product.objects.create(name="b").pk, 1)


class FlushedAsTheOwnerB(TransactionTestCase):
    def test_rows_do_not_leak(self) -> None:
        Product.objects.create(name="c")
        self.assertEqual(Product.objects.count(), 1)
