using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PgState.Engine.Manifests;

/// <summary>A value to write as YAML: a scalar, a mapping or a sequence, block or flow style. Built by
/// <c>pgstate import</c>; no reflection, so it is Native AOT-safe.</summary>
public abstract record YamlOut
{
    public static YamlOutScalar String(string value) => new(value, Raw: false);

    /// <summary>A number or boolean written as it is (the caller guarantees it is one).</summary>
    public static YamlOutScalar Int(long value) => new(value.ToString(CultureInfo.InvariantCulture), Raw: true);

    public static YamlOutScalar Bool(bool value) => new(value ? "true" : "false", Raw: true);

    /// <summary>A parameter value: a plain integer or decimal number stays a number, anything else a (quoted when needed) string.</summary>
    public static YamlOutScalar Setting(string value) =>
        YamlEmitter.PlainNumber().IsMatch(value) ? new(value, Raw: true) : String(value);

    /// <summary>
    /// A node of a manifest read back, as written: values the schema filled in (defaults) are left
    /// out; mappings below <paramref name="flowBelow"/> levels are written in flow style.
    /// </summary>
    public static YamlOut From(YamlNode node, int flowBelow = int.MaxValue, int depth = 0) => node switch
    {
        YamlScalar { Kind: ScalarKind.String } s => String(s.Text),
        YamlScalar { Kind: ScalarKind.Null } => new YamlOutScalar("null", Raw: true),
        YamlScalar s => new YamlOutScalar(s.Text, Raw: true),
        YamlMapping m => new YamlOutMapping([.. m.Values.Where(v => !v.IsDefault).Select(v => new YamlOutEntry(v.Key!, From(v, flowBelow, depth + 1)))], Flow: depth >= flowBelow),
        YamlSequence q => new YamlOutSequence([.. q.Items.Select(i => new YamlOutItem(From(i, flowBelow, depth + 1)))], Flow: depth >= flowBelow),
        _ => throw new InvalidOperationException("unknown YAML node"),
    };
}

public sealed record YamlOutScalar(string Text, bool Raw) : YamlOut;

/// <summary>One entry of a mapping, with comment lines above it and a comment after it.</summary>
public sealed record YamlOutEntry(string Key, YamlOut Value, IReadOnlyList<string>? Above = null, string? After = null);

public sealed record YamlOutMapping(IReadOnlyList<YamlOutEntry> Entries, bool Flow = false) : YamlOut;

public sealed record YamlOutItem(YamlOut Value, IReadOnlyList<string>? Above = null, string? After = null);

public sealed record YamlOutSequence(IReadOnlyList<YamlOutItem> Items, bool Flow = false) : YamlOut;

/// <summary>
/// Writes <see cref="YamlOut"/> values as YAML that pgstate's reader (and YAML 1.1 and 1.2 tools:
/// editors, Ansible) reads back as the same strings: a scalar is plain only when no reader could
/// take it for a null, boolean, number, indicator or comment; otherwise it is quoted. A literal
/// <c>${</c> is written <c>$${</c> (pgstate expands <c>${env:NAME}</c> in every value).
/// </summary>
public static partial class YamlEmitter
{
    /// <summary>Flow mappings wider than this are wrapped after a comma.</summary>
    public const int Width = 110;

    public static string Write(YamlOutMapping root)
    {
        var sb = new StringBuilder();
        WriteMapping(sb, root, 0);
        return sb.ToString();
    }

    /// <summary>Writes one top-level entry (a section of spec) at the given indent.</summary>
    public static string WriteEntry(YamlOutEntry entry, int indent)
    {
        var sb = new StringBuilder();
        WriteMapping(sb, new YamlOutMapping([entry]), indent);
        return sb.ToString();
    }

    private static void WriteMapping(StringBuilder sb, YamlOutMapping mapping, int indent)
    {
        foreach (var entry in mapping.Entries)
        {
            WriteComments(sb, entry.Above, indent);
            sb.Append(' ', indent).Append(Scalar(entry.Key)).Append(':');
            WriteValueAfterKey(sb, entry.Value, indent, entry.After);
        }
    }

    private static void WriteValueAfterKey(StringBuilder sb, YamlOut value, int indent, string? after)
    {
        switch (value)
        {
            case YamlOutMapping { Flow: false, Entries.Count: > 0 } m:
                EndLine(sb, after);
                WriteMapping(sb, m, indent + 2);
                break;
            case YamlOutSequence { Flow: false, Items.Count: > 0 } s:
                EndLine(sb, after);
                WriteSequence(sb, s, indent + 2);
                break;
            default:
                sb.Append(' ');
                var column = LineLength(sb);
                sb.Append(Inline(value, column));
                EndLine(sb, after);
                break;
        }
    }

    private static void WriteSequence(StringBuilder sb, YamlOutSequence sequence, int indent)
    {
        foreach (var item in sequence.Items)
        {
            WriteComments(sb, item.Above, indent);
            sb.Append(' ', indent).Append("- ");
            if (item.Value is YamlOutMapping { Flow: false, Entries.Count: > 0 } m)
            {
                // The first entry on the dash's line, the others under it.
                var first = m.Entries[0];
                if (first.Above is { Count: > 0 })
                {
                    sb.Length -= 2;
                    sb.Append('-').Append('\n');
                    WriteMapping(sb, m, indent + 2);
                    continue;
                }
                sb.Append(Scalar(first.Key)).Append(':');
                WriteValueAfterKey(sb, first.Value, indent + 2, first.After ?? item.After);
                WriteMapping(sb, new YamlOutMapping(m.Entries.Skip(1).ToList()), indent + 2);
                continue;
            }
            var column = LineLength(sb);
            sb.Append(Inline(item.Value, column));
            EndLine(sb, item.After);
        }
    }

    private static int LineLength(StringBuilder sb)
    {
        var i = sb.Length;
        while (i > 0 && sb[i - 1] != '\n')
        {
            i--;
        }
        return sb.Length - i;
    }

    /// <summary>A value on one line (flow style); the outermost one wrapped after commas past <see cref="Width"/>.</summary>
    private static string Inline(YamlOut value, int column, bool wrap = true) => value switch
    {
        YamlOutScalar s => s.Raw ? s.Text : Scalar(s.Text),
        YamlOutMapping m => Wrap('{', [.. m.Entries.Select(e => Scalar(e.Key) + ": " + Inline(e.Value, 0, wrap: false))], '}', column, wrap),
        YamlOutSequence q => Wrap('[', [.. q.Items.Select(i => Inline(i.Value, 0, wrap: false))], ']', column, wrap),
        _ => throw new InvalidOperationException("unknown YAML value"),
    };

    private static string Wrap(char open, IReadOnlyList<string> parts, char close, int column, bool wrap)
    {
        var sb = new StringBuilder().Append(open);
        var lineLength = column + 1;
        for (var i = 0; i < parts.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
                lineLength++;
                if (wrap && lineLength + 1 + parts[i].Length > Width)
                {
                    // Continuation lines of a flow collection: indented past its opening bracket.
                    sb.Append('\n').Append(' ', column + 1);
                    lineLength = column + 1;
                }
                else
                {
                    sb.Append(' ');
                    lineLength++;
                }
            }
            sb.Append(parts[i]);
            lineLength += parts[i].Length;
        }
        return sb.Append(close).ToString();
    }

    private static void WriteComments(StringBuilder sb, IReadOnlyList<string>? lines, int indent)
    {
        foreach (var line in lines ?? [])
        {
            sb.Append(' ', indent).Append(Comment(line)).Append('\n');
        }
    }

    private static void EndLine(StringBuilder sb, string? after)
    {
        if (after is not null)
        {
            sb.Append("  ").Append(Comment(after));
        }
        sb.Append('\n');
    }

    /// <summary>A comment line: "# text", control characters shown as \n, \t …, so a comment never ends early.</summary>
    public static string Comment(string text) => text.Length == 0 ? "#" : "# " + Printable(text);

    private static string Printable(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFEFF')
            {
                sb.Append(c switch { '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", _ => $"\\u{(int)c:x4}" });
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    /// <summary>A string scalar: plain when that reads back as the same string everywhere, else quoted.</summary>
    public static string Scalar(string value)
    {
        var text = value.Replace("${", "$${", StringComparison.Ordinal);
        if (IsPlainSafe(text))
        {
            return text;
        }
        var needsEscapes = text.Any(c => char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFEFF' or '\uFFFE' or '\uFFFF' || char.IsSurrogate(c));
        if (!needsEscapes && text.Contains('"', StringComparison.Ordinal) && !text.Contains('\'', StringComparison.Ordinal))
        {
            return "'" + text + "'";
        }
        var sb = new StringBuilder("\"");
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\0': sb.Append("\\0"); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                    {
                        sb.Append(c).Append(text[++i]);
                    }
                    else if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\uFEFF' or '\uFFFE' or '\uFFFF')
                    {
                        sb.Append(c <= 0xFF ? $"\\x{(int)c:x2}" : $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// True when a plain scalar reads back as this string: not empty, no surrounding blanks, no
    /// indicator first, no ": " or " #", no flow characters (a value may sit inside {…}), not a
    /// null, boolean or number in YAML 1.2 or 1.1 (yes, on, 0o17, 1_000, 1:20, .inf …).
    /// </summary>
    public static bool IsPlainSafe(string text)
    {
        if (text.Length == 0 || char.IsWhiteSpace(text[0]) || char.IsWhiteSpace(text[^1]))
        {
            return false;
        }
        if ("-?:,[]{}#&*!|>'\"%@`.".Contains(text[0], StringComparison.Ordinal) && !(text[0] == '.' && text.Length > 1 && text[1] == '/'))
        {
            // '.' leads .inf/.nan/.5 and "..." (a document end); "./x" stays plain.
            return false;
        }
        foreach (var c in text)
        {
            if (c is ',' or '[' or ']' or '{' or '}' or '"' or '\\' || char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\uFEFF' or '\u0085' or '\uFFFE' or '\uFFFF')
            {
                return false;
            }
        }
        if (text.Contains(": ", StringComparison.Ordinal) || text.Contains(" #", StringComparison.Ordinal) || text.EndsWith(':') || text.Contains(":\t", StringComparison.Ordinal))
        {
            return false;
        }
        if (Reserved().IsMatch(text) || Yaml11Number().IsMatch(text) || Yaml11Timestamp().IsMatch(text) || YamlTreeReader.TypePlain(text) != ScalarKind.String)
        {
            return false;
        }
        return true;
    }

    [GeneratedRegex(@"^(~|null|Null|NULL|[Yy]|[Nn]|[Yy]es|YES|[Nn]o|NO|[Tt]rue|TRUE|[Ff]alse|FALSE|[Oo]n|ON|[Oo]ff|OFF|<<|=)\z", RegexOptions.IgnoreCase)]
    private static partial Regex Reserved();

    // YAML 1.1 ints (binary, octal, hex, sexagesimal, underscores) and floats, and 1.2's 0o/0x; anything numeric-looking.
    [GeneratedRegex(@"^[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|([0-9][0-9_]*)?\.[0-9_.]*([eE][-+]?[0-9]+)?|[0-9][0-9_]*([eE][-+]?[0-9]+)?|\.(inf|Inf|INF)|\.(nan|NaN|NAN))\z")]
    private static partial Regex Yaml11Number();

    // YAML 1.1 timestamps (2030-01-31, 2030-01-31 12:00:00+00): a string here, a date in Ansible.
    [GeneratedRegex(@"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ]|\z)")]
    private static partial Regex Yaml11Timestamp();

    [GeneratedRegex(@"^-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?\z")]
    internal static partial Regex PlainNumber();
}
