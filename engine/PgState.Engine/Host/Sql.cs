namespace PgState.Engine.Host;

/// <summary>
/// Quoting for the few statements that cannot take bind parameters (ALTER SYSTEM, CREATE ROLE …).
/// A literal is written as an E'…' string with every backslash and quote escaped, which PostgreSQL
/// reads the same whatever standard_conforming_strings and backslash_quote say; the session pins
/// standard_conforming_strings=on as well. NUL cannot be sent and is refused.
/// </summary>
public static class Sql
{
    public static string Literal(string value)
    {
        Refuse(value);
        return "E'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    public static string Identifier(string name)
    {
        Refuse(name);
        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    private static void Refuse(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new Diagnostics.PgStateException("a value sent to PostgreSQL holds a NUL character, which it cannot store");
        }
    }
}
