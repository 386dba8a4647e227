using System.CommandLine;
using System.Net;
using PgState.Modules.Hba;

namespace PgState.Cli.Commands;

/// <summary>pgstate hba test: which rule of the desired and of the live pg_hba.conf would match a connection.</summary>
internal sealed class HbaTestCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, HbaConnection Connection, ConnectionOverride Overrides);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var type = new Option<string>("--type") { Description = "local or host.", DefaultValueFactory = _ => "host" };
        type.AcceptOnlyFromAmong("local", "host");
        var database = new Option<string>("--database") { Description = "Database asked for (replication for a replication connection).", Required = true };
        var user = new Option<string>("--user") { Description = "Role name.", Required = true };
        var address = new Option<string?>("--address") { HelpName = "IP", Description = "Client IP address (host connections)." };
        var ssl = new Option<bool>("--ssl") { Description = "The connection uses SSL." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var pgUser = CommonOptions.PgUser();
        var test = new Command("test", "Show which rule of the desired and of the live pg_hba.conf would match a connection, and its method.")
        {
            files, type, database, user, address, ssl, host, port, pgUser,
        };
        test.SetAction(async (result, ct) =>
        {
            var addressText = result.GetValue(address);
            IPAddress? ip = null;
            if (addressText is not null && !IPAddress.TryParse(addressText, out ip))
            {
                io.Error.WriteLine($"pgstate: error: --address {addressText} is not an IP address");
                return ExitCodes.Error;
            }
            if (result.GetValue(type) == "host" && ip is null)
            {
                io.Error.WriteLine("pgstate: error: a host connection needs --address");
                return ExitCodes.Error;
            }
            var connection = new HbaConnection(result.GetValue(type)!, result.GetValue(database)!, result.GetValue(user)!, ip, result.GetValue(ssl));
            return await RunAsync(new Arguments(result.GetValue(files)!, connection,
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(pgUser))), ct);
        });
        return new Command("hba", "pg_hba.conf tools.") { test };
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(args.Files, args.Overrides, connectEarly: true);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        foreach (var host in hosts)
        {
            if (host.Modules.OfType<BoundHba>().FirstOrDefault() is not { } hba)
            {
                io.Error.WriteLine($"pgstate: host '{host.Host.Name}' has no spec.hba: nothing to test");
                continue;
            }
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            var path = await hba.PathAsync(session, cancellationToken);
            var liveText = BoundHba.ReadText(path);
            var live = HbaFile.Parse(liveText);
            var desired = HbaFile.Parse(hba.Candidate(liveText, live));
            io.Output.WriteLine($"host \"{host.Host.Name}\": {args.Connection.Describe()}");
            io.Output.WriteLine("  desired: " + Describe(desired, args.Connection, "the manifest's file", hba.Rules));
            io.Output.WriteLine("  live:    " + Describe(live, args.Connection, path, null));
        }
        return ExitCodes.Ok;
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
