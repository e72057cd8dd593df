"""``python -m services.drift``: one drift worker process (a Faust worker)."""

from services.drift.worker import main

if __name__ == "__main__":
    main()
