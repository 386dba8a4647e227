using System.Globalization;
using System.Text;

namespace PgState.Engine.Rendering;

/// <summary>
/// Text that reaches a terminal or a pull-request comment from a live host, a database or a plan
/// file (names, addresses, probe values, server messages) can hold anything: escape sequences that
/// rewrite a terminal, bidi overrides that reorder a line, newlines and HTML that close a
/// &lt;details&gt; block or fake a heading. Renderers pass every such string through here.
/// </summary>
public static class SafeText
{
    /// <summary>Control characters (C0 and C1, newline included) and format characters (bidi overrides, zero-width) as \u{XXXX}.</summary>
    public static string Text(string? text)
    {
        if (string.IsNullOrEmpty(text) || !text.Any(Unsafe))
        {
            return text ?? "";
        }
        var sb = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (Unsafe(c))
            {
                sb.Append("\\u{").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture)).Append('}');
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    /// <summary>Markdown prose: <see cref="Text"/>, then no HTML, no links, no code-span or table breakout.</summary>
    public static string Markdown(string? text)
    {
        var safe = Text(text);
        var sb = new StringBuilder(safe.Length + 16);
        foreach (var c in safe)
        {
            sb.Append(c switch
            {
                '<' => "&lt;",
                '>' => "&gt;",
                '&' => "&amp;",
                '|' => "\\|",
                '`' => "'",
                _ => c.ToString(),
            });
        }
        // No link or image can be formed ("[text](url)"), while hba.rule[3] still reads as itself.
        return sb.ToString().Replace("](", "]\\(", StringComparison.Ordinal);
    }

    /// <summary>A markdown code span (safe inside a table cell too).</summary>
    public static string Code(string? text) => "`" + Text(text).Replace('`', '\'').Replace("|", "\\|", StringComparison.Ordinal) + "`";

    private static bool Unsafe(char c) =>
        char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;
}
