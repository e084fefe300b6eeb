"""`python -m cormorant` and the `cormorant` console script."""

import sys

from . import _cormorant


def main() -> None:
    sys.exit(_cormorant.cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
