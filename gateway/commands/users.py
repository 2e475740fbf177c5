"""`dcgw users`: tools for the users of the local authenticator.

    dcgw users hash-password            asks twice on a terminal
    printf '%s\\n' "$PASSWORD" | dcgw users hash-password

prints an argon2id PHC string for `password_hash` in `[[auth.users]]`. The password is read
from the terminal without echo, or as one line from standard input; never from the command
line, where other users could see it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway.commands.common import add_command

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "users", __doc__, help="manage local users")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    hash_password = actions.add_parser("hash-password", help="print an argon2id hash of a password",
                                       description="Read a password and print its argon2id hash for "
                                                   "auth.users[].password_hash.")
    hash_password.set_defaults(func=run_hash_password)


def run_hash_password(args: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("dcgw users hash-password: the two passwords differ; nothing was hashed", file=sys.stderr)
            return EXIT_INVALID
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        print("dcgw users hash-password: password: empty; an empty password is refused", file=sys.stderr)
        return EXIT_INVALID
    print(PasswordHasher().hash(password))
    return 0
