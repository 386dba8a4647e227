using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Manifests;
using PgState.Engine.Templates;

namespace PgState.Modules.PgBackRest;

/// <summary>The rendered file (with secrets, to write) and the same text with secrets masked (to show).</summary>
public sealed record RenderedConfig(string Text, string Masked, string? Problem = null);

/// <summary>
/// pgbackrest.conf as pgstate writes it: a header naming the host and manifest, [global] with the
/// repositories and the typed options, [STANZA] with pg1-path/port/socket from the manifest. Secrets
/// (cipher pass, S3 keys) are written into the file (pgBackRest's archive-push, started by the
/// server, reads them there) and never into a plan: every view of the file masks them.
/// </summary>
public static partial class PgBackRestConfig
{
    public const string Mask = "<secret>";

    public static string Header(string host) => $"# Written by pgstate for host {host}";

    public static bool WrittenFor(byte[] content, string host)
    {
        var header = Encoding.UTF8.GetBytes(Header(host));
        return content.AsSpan().StartsWith(header) && content.Length > header.Length && content[header.Length] is (byte)':' or (byte)' ' or (byte)'\n';
    }

    /// <summary>Keys whose values are secrets, whichever repository they belong to.</summary>
    public static bool IsSecretKey(string key) => SecretKey().IsMatch(key);

    public static RenderedConfig Render(HostManifest host, PgBackRestSection section, string? dataDirectory, IReadOnlyDictionary<SecretReference, string> secrets)
    {
        var stanzaOptions = new List<PgBackRestOption>();
        if (dataDirectory is { Length: > 0 })
        {
            stanzaOptions.Add(new("pg1-path", dataDirectory));
        }
        stanzaOptions.Add(new("pg1-port", host.Connection.Port.ToString(CultureInfo.InvariantCulture)));
        if (host.Connection.Host.StartsWith('/'))
        {
            stanzaOptions.Add(new("pg1-socket-path", host.Connection.Host));
        }
        if (host.Connection.User != "postgres")
        {
            stanzaOptions.Add(new("pg1-user", host.Connection.User));
        }
        string? problem = null;
        IEnumerable<TemplateModel> Lines(IEnumerable<PgBackRestOption> options, bool masked) => options.Select(o =>
        {
            var value = o.Secret is { } s ? (masked ? Mask : secrets[s]) : o.Value ?? "";
            if (value.Any(c => c is '\n' or '\r' or '\0') || (o.Secret is null && value != value.Trim()))
            {
                problem ??= $"the value of {o.Key} holds a line break or surrounding spaces, which pgbackrest.conf cannot carry";
                value = "";
            }
            return new TemplateModel().Set("key", o.Key).Set("value", value);
        });
        string RenderWith(bool masked) => TemplateRenderer.Render(typeof(PgBackRestConfig).Assembly, "PgState.Modules.PgBackRest.pgbackrest.conf.sbn",
            new TemplateModel().Set("header", Header(host.Name)).Set("manifest", section.ManifestPath).Set("stanza", section.Stanza)
                .Set("global", Lines(section.Global, masked).ToList()).Set("stanza_options", Lines(stanzaOptions, masked).ToList()));
        var text = RenderWith(masked: false);
        var shown = RenderWith(masked: true);
        return new RenderedConfig(text, shown, problem);
    }

    /// <summary>The file's text with every secret option's value replaced by <see cref="Mask"/>.</summary>
    public static string MaskSecrets(string text) =>
        string.Join('\n', text.Split('\n').Select(line =>
            line.IndexOf('=', StringComparison.Ordinal) is var eq and > 0 && IsSecretKey(line[..eq].Trim()) ? line[..(eq + 1)] + Mask : line));

    /// <summary>The first line that differs, numbered, from already-masked texts (only a secret when none does).</summary>
    public static (string Before, string After) FirstDifference(string a, string b) =>
        TextSafety.FirstDifferingLine(a, b) ?? ("(a secret)", "(a secret)");

    [GeneratedRegex(@"(cipher-pass|-key|-key-secret|-token|-passphrase|password)\z")]
    private static partial Regex SecretKey();
}
