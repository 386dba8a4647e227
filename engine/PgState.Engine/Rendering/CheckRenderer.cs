using System.Text;
using System.Text.Json;
using PgState.Engine.Resources;

namespace PgState.Engine.Rendering;

/// <summary>Health-check results as text, markdown or JSON, like plans.</summary>
internal static class CheckRenderer
{
    public static string Word(CheckStatus s) => s.ToString().ToLowerInvariant();

    public static string Summary(IReadOnlyList<CheckResult> checks) =>
        $"Checks: {checks.Count(c => c.Status == CheckStatus.Ok)} ok, {checks.Count(c => c.Status == CheckStatus.Warn)} warn, " +
        $"{checks.Count(c => c.Status == CheckStatus.Fail)} fail, {checks.Count(c => c.Status == CheckStatus.Skipped)} skipped.";

    public static string Render(IReadOnlyList<(string Host, IReadOnlyList<CheckResult> Checks)> hosts, OutputFormat format)
    {
        if (format == OutputFormat.Json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteNumber("formatVersion", 1);
                w.WriteStartArray("hosts");
                foreach (var (host, checks) in hosts)
                {
                    w.WriteStartObject();
                    w.WriteString("host", host);
                    w.WriteStartArray("checks");
                    foreach (var c in checks)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", c.Id);
                        w.WriteString("status", Word(c.Status));
                        w.WriteString("message", c.Message);
                        w.WriteString("value", c.Value);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
        }
        var sb = new StringBuilder();
        foreach (var (host, checks) in hosts)
        {
            if (format == OutputFormat.Markdown)
            {
                sb.Append("### pgstate checks for ").Append(SafeText.Code(host)).Append("\n\n**").Append(Summary(checks)).Append("**\n\n| status | check | message |\n|---|---|---|\n");
                foreach (var c in checks)
                {
                    sb.Append("| ").Append(Word(c.Status)).Append(" | `").Append(c.Id).Append("` | ").Append(SafeText.Markdown(c.Message)).Append(" |\n");
                }
                sb.Append('\n');
            }
            else
            {
                sb.Append("pgstate checks for host \"").Append(SafeText.Text(host)).Append("\"\n\n");
                foreach (var c in checks)
                {
                    sb.Append("  ").Append(Word(c.Status).ToUpperInvariant().PadRight(8)).Append(c.Id.PadRight(22)).Append(' ').Append(SafeText.Text(c.Message)).Append('\n');
                }
                sb.Append('\n').Append(Summary(checks)).Append('\n');
            }
        }
        return sb.ToString();
    }
}
