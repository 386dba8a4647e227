using System.Net;
using PgState.Engine.Resources;

namespace PgState.Modules.Hba;

/// <summary>pgstate hba test: which rule of the desired and of the live pg_hba.conf would match a connection.</summary>
internal static class HbaTest
{
    public static async Task<int> RunAsync(VerbContext context, CancellationToken cancellationToken)
    {
        var type = context.String("type") ?? "host";
        var addressText = context.String("address");
        IPAddress? ip = null;
        if (addressText is not null && !IPAddress.TryParse(addressText, out ip))
        {
            context.Error.WriteLine($"pgstate: error: --address {addressText} is not an IP address");
            return 1;
        }
        if (type == "host" && ip is null)
        {
            context.Error.WriteLine("pgstate: error: a host connection needs --address");
            return 1;
        }
        var connection = new HbaConnection(type, context.String("database")!, context.String("user")!, ip, context.Flag("ssl"));
        foreach (var host in context.Hosts)
        {
            if (host.Modules.OfType<BoundHba>().FirstOrDefault() is not { } hba)
            {
                context.Error.WriteLine($"pgstate: host '{host.Host.Name}' has no spec.hba: nothing to test");
                continue;
            }
            var session = await context.ConnectAsync(host, cancellationToken);
            await using var _ = session as IAsyncDisposable;
            var path = hba.PathFor(session.Server);
            var live = HbaFile.Parse(BoundHba.ReadBytes(path), session.Server.Major);
            var desired = HbaFile.Parse(hba.Candidate(live), session.Server.Major);
            context.Output.WriteLine($"host \"{host.Host.Name}\": {connection.Describe()}");
            context.Output.WriteLine("  desired: " + Describe(desired, connection, "the rendered pg_hba.conf", hba.Section.Rules));
            context.Output.WriteLine("  live:    " + Describe(live, connection, path, null));
        }
        return 0;
    }

    private static string Describe(HbaFile file, HbaConnection connection, string where, IReadOnlyList<HbaRule>? managed)
    {
        var match = HbaMatcher.FirstMatch([.. file.Rules.Select(r => r.Rule)], connection);
        if (match is not { } m)
        {
            return $"no rule in {where} matches: the connection is rejected";
        }
        var rule = file.Rules[m];
        var index = managed is null ? -1 : managed.ToList().FindIndex(r => r.Key == rule.Rule.Key);
        var address = index >= 0 ? $"hba.rule[{index}], " : "";
        var verdict = rule.Rule.Method == "reject" ? "the connection is rejected" : $"method {rule.Rule.Method}";
        return $"{address}line {rule.Line} of {where}: {rule.Rule.Describe()} → {verdict}";
    }
}
