from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.CreateModel("Coupon", [("id", models.BigAutoField(primary_key=True)),
                                          ("code", models.CharField(max_length=20))]),
    ]
