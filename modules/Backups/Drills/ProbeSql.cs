namespace PgState.Modules.Backups;

/// <summary>
/// Reads a probe's SQL the way PostgreSQL's lexer splits it (quotes, dollar quotes, identifiers,
/// comments) just far enough to tell whether it is one query that only reads: its first keyword is
/// SELECT, WITH, VALUES or TABLE, and no semicolon ends a statement before the last. The probe
/// also runs in a read-only transaction, inside a subquery, on the drill's own server.
/// </summary>
public static class ProbeSql
{
    private static readonly string[] Reading = ["select", "with", "values", "table"];

    /// <summary>Null when the text is one reading query; else why not.</summary>
    public static string? Check(string sql)
    {
        var tokens = Words(sql, out var statements, out var unterminated);
        if (unterminated is not null)
        {
            return unterminated;
        }
        if (tokens.Count == 0)
        {
            return "it holds no SQL";
        }
        if (statements > 1)
        {
            return "it holds more than one statement (a ; before the end)";
        }
        var first = tokens[0].ToLowerInvariant();
        if (!Reading.Contains(first))
        {
            return $"it starts with {tokens[0].ToUpperInvariant()}, not SELECT (or WITH … SELECT, VALUES, TABLE)";
        }
        if (first == "with" && tokens.Skip(1).Select(t => t.ToLowerInvariant()).FirstOrDefault(t => t is "insert" or "update" or "delete" or "merge") is { } writes)
        {
            return $"its WITH clause holds {writes.ToUpperInvariant()}, which writes";
        }
        return null;
    }

    /// <summary>The probe's text without a final semicolon (and what follows it: whitespace, comments), to nest it in a subquery.</summary>
    public static string WithoutFinalSemicolon(string sql)
    {
        Words(sql, out _, out _, out var lastSemicolon);
        return lastSemicolon >= 0 ? sql[..lastSemicolon] : sql;
    }

    private static List<string> Words(string sql, out int statements, out string? unterminated) => Words(sql, out statements, out unterminated, out _);

    /// <summary>The bare words outside quotes and comments; statements counts the non-empty statements.</summary>
    private static List<string> Words(string sql, out int statements, out string? unterminated, out int lastSemicolon)
    {
        var words = new List<string>();
        statements = 0;
        unterminated = null;
        lastSemicolon = -1;
        var statementHasContent = false;
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                while (i < sql.Length && sql[i] != '\n')
                {
                    i++;
                }
                continue;
            }
            if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                // Block comments nest in PostgreSQL.
                var depth = 0;
                do
                {
                    if (i + 1 < sql.Length && sql[i] == '/' && sql[i + 1] == '*')
                    {
                        depth++;
                        i += 2;
                    }
                    else if (i + 1 < sql.Length && sql[i] == '*' && sql[i + 1] == '/')
                    {
                        depth--;
                        i += 2;
                    }
                    else
                    {
                        i++;
                    }
                }
                while (depth > 0 && i < sql.Length);
                if (depth > 0)
                {
                    unterminated = "a /* comment is not closed";
                    return words;
                }
                continue;
            }
            if (c == ';')
            {
                if (statementHasContent)
                {
                    statements++;
                    if (lastSemicolon < 0)
                    {
                        lastSemicolon = i;
                    }
                }
                statementHasContent = false;
                i++;
                continue;
            }
            statementHasContent = true;
            if (c == '\'' || c == '"')
            {
                // E'…' strings take backslash escapes (E'it\'s').
                var escapes = c == '\'' && i > 0 && sql[i - 1] is 'E' or 'e' && (i < 2 || !(char.IsLetterOrDigit(sql[i - 2]) || sql[i - 2] == '_'));
                var end = Closing(sql, i + 1, c, escapes);
                if (end < 0)
                {
                    unterminated = c == '\'' ? "a ' string is not closed" : "a \" identifier is not closed";
                    return words;
                }
                i = end + 1;
                continue;
            }
            if (c == '$' && DollarTag(sql, i) is { } tag)
            {
                var end = sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                if (end < 0)
                {
                    unterminated = $"a {tag} quoted string is not closed";
                    return words;
                }
                i = end + tag.Length;
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] is '_' or '$'))
                {
                    i++;
                }
                words.Add(sql[start..i]);
                continue;
            }
            i++;
        }
        if (statementHasContent)
        {
            statements++;
            lastSemicolon = -1;
        }
        return words;
    }

    /// <summary>The index of the closing quote (a doubled quote is part of the text), or -1.</summary>
    private static int Closing(string sql, int from, char quote, bool backslashEscapes)
    {
        for (var i = from; i < sql.Length; i++)
        {
            if (backslashEscapes && sql[i] == '\\')
            {
                i++;
                continue;
            }
            if (sql[i] == quote)
            {
                if (i + 1 < sql.Length && sql[i + 1] == quote)
                {
                    i++;
                    continue;
                }
                return i;
            }
        }
        return -1;
    }

    /// <summary>$$ or $tag$ starting at i, or null ($1 is a parameter, not a quote).</summary>
    private static string? DollarTag(string sql, int i)
    {
        var j = i + 1;
        if (j < sql.Length && char.IsDigit(sql[j]))
        {
            return null;
        }
        while (j < sql.Length && (char.IsLetterOrDigit(sql[j]) || sql[j] == '_'))
        {
            j++;
        }
        return j < sql.Length && sql[j] == '$' ? sql[i..(j + 1)] : null;
    }
}
