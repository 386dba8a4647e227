using System.Text;

namespace PgState.Engine.Manifests;

/// <summary>Showing untrusted text in a message without letting it break the message (or a terminal).</summary>
public static class TextSafety
{
    /// <summary>Text safe to quote in a message: control characters shown as \n, \t, \u0000.</summary>
    public static string Printable(string text)
    {
        if (text.Length > 80)
        {
            text = text[..80] + "…";
        }
        if (!text.Any(char.IsControl))
        {
            return text;
        }
        var sb = new StringBuilder();
        foreach (var c in text)
        {
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return sb.ToString();
    }

    /// <summary>True when no manifest field may hold the text (control characters, separators, lone surrogates): the manifest reader refuses it.</summary>
    public static bool HasControl(string text) => HostileValues.HasControl(text, allowLines: false);

    /// <summary>The first line where two texts differ, numbered, for a plan's before/after of a file; null when equal.</summary>
    public static (string Before, string After)? FirstDifferingLine(string a, string b)
    {
        var x = a.Split('\n');
        var y = b.Split('\n');
        for (var i = 0; i < Math.Max(x.Length, y.Length); i++)
        {
            var l = i < x.Length ? x[i] : "";
            var r = i < y.Length ? y[i] : "";
            if (l != r)
            {
                return ($"line {i + 1}: {Printable(l)}", $"line {i + 1}: {r}");
            }
        }
        return null;
    }
}
