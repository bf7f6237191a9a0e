"""Storage: tortoise-orm models, their migrations, and the Store the rest of the node talks to."""
