// The models.
