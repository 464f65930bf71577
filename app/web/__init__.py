"""The HTTP edge: one router module or package per feature, the access policy (`security`), errors
mapped once (`errors`), forms (`forms`), templating and request dependencies (`deps`)."""
