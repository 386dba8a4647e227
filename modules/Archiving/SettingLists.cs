using System.Text;
using PgState.Engine.Host;

namespace PgState.Modules.Archiving;

/// <summary>
/// Parameters PostgreSQL keeps as a list of quoted elements (GUC_LIST_QUOTE: search_path, the
/// preload libraries, temp_tablespaces, unix_socket_directories). ALTER SYSTEM takes such a value
/// as one literal per element: given "a, b" as one literal it stores a single element named
/// `a, b` (a server that then cannot start: no library "pg_stat_statements, auto_explain").
/// </summary>
internal static class SettingLists
{
    // The server's own list (pg_dump's variable_is_guc_list_quote has the same one).
    private static readonly HashSet<string> ListQuoted = new(StringComparer.OrdinalIgnoreCase)
    {
        "search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries", "shared_preload_libraries", "unix_socket_directories",
    };

    // Identifiers (search_path, temp_tablespaces) are folded to lower case when unquoted, as the server reads them; paths and library names are not.
    private static readonly HashSet<string> Identifiers = new(StringComparer.OrdinalIgnoreCase) { "search_path", "temp_tablespaces" };

    // scanner_isspace: what PostgreSQL's list parsing skips between elements.
    private static readonly char[] ServerSpaces = [' ', '\t', '\n', '\r', '\f'];

    private static bool IsServerSpace(char c) => Array.IndexOf(ServerSpaces, c) >= 0;

    private static bool IsBlank(string value) => value.All(IsServerSpace);

    /// <summary>The value as ALTER SYSTEM SET takes it: one literal, or a literal per element for a list parameter.</summary>
    public static string Literals(string name, string value) =>
        ListQuoted.Contains(name) && !IsBlank(value)
            ? string.Join(", ", Split(value, Identifiers.Contains(name)).Select(Sql.Literal))
            : Sql.Literal(value);

    /// <summary>
    /// What the server would refuse, or start without, in a list: an empty element (a trailing or
    /// doubled comma, "" — an empty library or socket directory keeps the server from starting),
    /// text after a closing quote, an unclosed quote. Null when the list reads cleanly.
    /// </summary>
    public static string? Problem(string name, string value)
    {
        if (!ListQuoted.Contains(name) || value.Length == 0)
        {
            return null;
        }
        // The server's scanner knows five blanks; other Unicode spaces (no-break, em, ideographic) are part of a name
        // to it, while .NET would trim them: refused, so that what is checked and what is written are the same list.
        if (value.FirstOrDefault(c => (char.IsWhiteSpace(c) && !IsServerSpace(c)) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format) is var odd && odd != default)
        {
            return $"{name} is a list, and its value holds U+{(int)odd:X4}, a space or format character the server reads as part of a name; use plain spaces";
        }
        if (IsBlank(value))
        {
            return null;
        }
        var inQuotes = false;
        var afterQuote = false;
        var element = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (inQuotes)
            {
                if (c == '"' && i + 1 < value.Length && value[i + 1] == '"')
                {
                    i++;
                    element++;
                }
                else if (c == '"')
                {
                    inQuotes = false;
                    afterQuote = true;
                }
                else
                {
                    element++;
                }
                continue;
            }
            if (c == ',')
            {
                if (element == 0)
                {
                    return $"{name} is a list, and \"{value}\" has an empty element (a doubled or trailing comma, or \"\"): the server would read it as a name with no characters";
                }
                element = 0;
                afterQuote = false;
            }
            else if (IsServerSpace(c))
            {
                continue;
            }
            else if (afterQuote)
            {
                return $"{name} is a list, and \"{value}\" has text after a closing double quote; quote a whole element or none of it";
            }
            else if (c == '"')
            {
                if (element > 0)
                {
                    return $"{name} is a list, and \"{value}\" has a double quote inside an element; quote a whole element or none of it";
                }
                inQuotes = true;
            }
            else
            {
                element++;
            }
        }
        return inQuotes ? $"{name} is a list, and \"{value}\" has a double quote that is not closed"
            : element == 0 ? $"{name} is a list, and \"{value}\" ends with an empty element (a trailing comma, or \"\")"
            : null;
    }

    /// <summary>For comparison: a list parameter's elements as the server reads them (spacing, quoting and, for identifiers, case aside); null for other parameters.</summary>
    public static string? Canonical(string name, string value) =>
        ListQuoted.Contains(name) ? string.Join('\u0001', Split(value, Identifiers.Contains(name))) : null;

    /// <summary>Splits a list as the server does (SplitIdentifierString / SplitDirectoriesString): commas outside double quotes, "" inside quotes is one ".</summary>
    public static IReadOnlyList<string> Split(string value, bool foldCase)
    {
        var elements = new List<string>();
        var i = 0;
        while (true)
        {
            while (i < value.Length && IsServerSpace(value[i]))
            {
                i++;
            }
            var element = new StringBuilder();
            if (i < value.Length && value[i] == '"')
            {
                i++;
                while (i < value.Length && !(value[i] == '"' && (i + 1 >= value.Length || value[i + 1] != '"')))
                {
                    element.Append(value[i]);
                    i += value[i] == '"' ? 2 : 1;
                }
                i++;
            }
            else
            {
                var start = i;
                while (i < value.Length && value[i] != ',')
                {
                    i++;
                }
                var word = value[start..i].TrimEnd(ServerSpaces);
                // The server folds A-Z only (downcase_identifier): Unicode folding would write another name (KELVIN SIGN K -> k).
                element.Append(foldCase ? string.Create(word.Length, word, static (span, w) =>
                {
                    for (var j = 0; j < w.Length; j++)
                    {
                        span[j] = char.IsAsciiLetterUpper(w[j]) ? (char)(w[j] + 32) : w[j];
                    }
                }) : word);
            }
            elements.Add(element.ToString());
            while (i < value.Length && IsServerSpace(value[i]))
            {
                i++;
            }
            if (i >= value.Length || value[i] != ',')
            {
                return elements;
            }
            i++;
        }
    }
}
