"""Password hashing (Argon2id) and the password policy applied on create, change and reset.

The policy, each rule with its own message:

- 10 to 128 characters (a longer one is refused by its length, never hashed);
- not the username, and not containing it;
- not one character repeated;
- not one of the most common passwords (``COMMON_PASSWORDS``, compared case-insensitively);
- no control characters (NUL, tabs, line breaks … — they cannot be typed into a login form).
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from patrol.errors import InvalidRequest, Problem

MIN_LENGTH = 10
MAX_LENGTH = 128

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Verified when the username is unknown, so a wrong username costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

# Passwords of 10 or more characters that head the public lists of leaked passwords (the
# "most common passwords" lists compiled from breach corpora, e.g. SecLists' top lists and the
# analyses of the 2011 CSDN and 163.com leaks for Chinese users). Shorter ones are refused by length.
COMMON_PASSWORDS = frozenset(
    """
    0000000000 0123456789 0987654321 1111111111 1122334455 1212121212 1234512345 1234567890
    12345678910 1234567890a 123456789a 123456789q 123456789z 123123123a 1231231234 1234qwer12
    123qweasdzxc 1357924680 1314520520 1314521521 147258369a 1472583690 159357159357 1q2w3e4r5t
    1q2w3e4r5t6y 1qaz2wsx3edc 1qazxsw23edc 2wsx3edc4rfv 5201314520 5201314521 6666666666 8888888888
    9876543210 a123456789 a1234567890 aa123456789 abc1234567 abcd123456 abcd1234567 abcdefg123
    abcdefghij admin12345 admin123456 administrator asdfghjkl1 asdfghjkl123 baseball123 basketball
    changeme123 chocolate1 computer123 dragon1234 football123 iloveyou12 iloveyou123 iloveyou1314
    letmein123 linkinpark liverpool1 manchester michael123 monkey1234 p@ssw0rd123 passw0rd123
    password00 password01 password11 password12 password123 password1234 password12345 password2024
    password2025 password2026 pokemon123 princess12 princess123 q123456789 qazwsx1234 qazwsxedc123
    qq123456789 qwe1234567 qweasdzxc123 qwer123456 qwerty1234 qwerty12345 qwerty123456 qwertyuiop
    qwertyuiop123 starwars123 sunshine12 sunshine123 superman123 trustno1234 welcome123 welcome1234
    whatever123 woaini1314 woaini123456 woaini5201314 zhang123456 zxcvbnm123 zxcvbnm1234
    """.split()
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (no such user) a dummy one is verified, so the
    answer takes about as long either way."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, username: str) -> list[Problem]:
    """Every rule of the policy ``password`` breaks, each named (empty: it is acceptable)."""
    if len(password) > MAX_LENGTH:
        return [
            Problem(
                "password-too-long",
                f"password must be at most {MAX_LENGTH} characters, got {len(password)}",
            )
        ]
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(
            Problem(
                "password-too-short",
                f"password must be at least {MIN_LENGTH} characters, got {len(password)}",
            )
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
        problems.append(Problem("password-control-character", "password must not contain control characters"))
    folded = password.casefold()
    if username and username.casefold() in folded:
        problems.append(Problem("password-contains-username", "password must not contain the username"))
    if password and len(set(password)) == 1:
        problems.append(Problem("password-one-character", "password must not be one character repeated"))
    if folded in COMMON_PASSWORDS:
        problems.append(
            Problem("password-common", "password is one of the most common passwords; choose another")
        )
    return problems


def check_password(password: str, username: str) -> None:
    """InvalidRequest naming every rule of the policy the password breaks."""
    problems = password_problems(password, username)
    if problems:
        raise InvalidRequest("; ".join(p.message for p in problems), problems)
