"""Allow ``python -m checker.action`` (the container image's entrypoint)."""

from checker.action.entrypoint import main

if __name__ == "__main__":
    main()
